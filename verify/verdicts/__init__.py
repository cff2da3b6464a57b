"""What the results say: bounds, corollaries, datasets and stabilisers judged from a results store."""
