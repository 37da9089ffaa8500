"""The bottom layer: what is no model's business. Errors written for the visitor and their catalogues (errors.py,
locales/), the settings (settings.py), the device (device.py), the one pruned temp folder (tempfiles.py), the
bounded cache (cache.py) and how a helper process starts (spawn.py). It imports nothing of ours; every other
package may import it."""
