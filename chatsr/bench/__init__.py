"""The benchmark runner (``chatsr bench``): chatsr against its peers on Nguyen and AI-Feynman."""
