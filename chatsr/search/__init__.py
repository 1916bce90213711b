"""Search around the model's proposals: the refinement rounds, tidying and selection. The model
enters only through a proposer callable."""
