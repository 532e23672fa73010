"""Tools: the PyTorch reference loop of the homework and the trainer of the shipped digit classifier."""
