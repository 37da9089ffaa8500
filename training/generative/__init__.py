"""Generative training: the autoencoder and the GAN, FID, and the autoencoder's latent space."""
