"""Full fine-tuning of the text encoders as practitioners do it (AdamW, warm-up and decay, dropout,
minibatches, several seeds) and the named suites of ``ftstab real --suite``."""
