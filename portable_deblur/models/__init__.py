"""Model stage: candidates (``candidate``) and the builders they name (``build`` -> ``unet`` / ``nafnet`` ->
``blocks``, ``layers``), with the one table of what each layer lowers to, quantizes with and prunes as
(``layer_support``)."""
