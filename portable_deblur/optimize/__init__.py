"""Optimize stage: ``plan`` the variants of a trained model, then make them (``variants``: ``prune``,
``sparsity``, ``qat``; PTQ is a conversion mode of ``deploy.export``)."""
