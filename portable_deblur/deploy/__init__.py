"""Deploy stage: ``export`` to ``.tflite``, read its ops (``flatbuffer``), run it (``runtime``), time it
(``measure``), and judge which accelerators would run it (``portability``, ``op_support/*.yaml``)."""
