"""Training, by job: data/ (data sets, zips, transforms), finetuning/ (the staged run, its export), compression/,
ensembles/, generative/ (autoencoder, GAN); at the top the training loop (trainer.py), the checkpoint format
(checkpoint.py), the digits models' training (train_digits.py) and the resampling comparison (resample.py, which
trains, so it sits above data/). Nothing here knows it runs in a job (jobs/ calls it)."""
