"""Recovery (Eq. 9): the synthesis loop, its random views, priors and settings."""
