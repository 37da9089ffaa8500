"""The bottom layer: what is no model's business (errors written for the visitor and their catalogue). It imports
nothing of ours; zoo, playground, training and ui may import it."""
