"""One module per figure: read results, write PNG + PDF + the plotted data as CSV."""
