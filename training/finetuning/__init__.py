"""Fine-tuning: the staged run (finetune.py), its config, transfer (heads, freezing), the code it shows, the export."""
