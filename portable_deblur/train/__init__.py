"""Train stage: ``fit`` a model on crops, then ``judge`` it on full validation frames (``evaluate``)."""
