"""Networks and their training: the autoencoders (``autoencoder``), the fit loop with early stopping
and checkpoints (``training``), and the image models whose features are compared with fMRI
(``image_models``). Nothing here reads params or imports a stage.
"""
