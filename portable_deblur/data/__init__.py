"""Data stage: blurry/sharp pairs -- the embedded camera-shake set (``blur``), a user's GoPro / REDS / paired
folders (``sources``), streamed to training as crops (``pipeline``)."""
