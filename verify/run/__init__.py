"""One task: train its models (batched), measure every row, hand the left-out rows to the bounds."""
