"""An explorer for notebooks: choose or upload data, press Discover, read the formula.

``Explorer()`` in a notebook cell shows the whole interface: a shipped data set or an uploaded
CSV file, the target column and the features, a prompt for the model, the operators allowed,
the number of candidates and the time budget. Discover fits a `ChatSRRegressor` and fills four
tabs: the best formula (LaTeX, R², MSE), the Pareto front, the formula plotted against the data,
and the model's first-token probabilities for these data and this prompt.

Every control is an attribute, so the logic runs without a browser: set widget values, call
``explorer.discover_button.click()`` and read the result widgets. Errors (a bad file, data the
regressor rejects, a missing model) are shown as a message in the interface, never as a
traceback. The model is loaded on the first Discover, so the interface appears at once.

>>> from chatsr.model.modeling import ChatSRConfig, ChatSRForCausalLM
>>> from chatsr.model.tokenizer import load_tokenizer
>>> tok = load_tokenizer()
>>> explorer = Explorer(model=(ChatSRForCausalLM(ChatSRConfig.tiny(tok)).eval(), tok))
>>> explorer.dataset.value, explorer.target.value, explorer.features.value
('kepler', 'period', ('a',))
>>> explorer.discover_button.description, explorer.allowed_operators is None
('Discover', True)
"""

from chatsr.widgets.explorer import STAGES, Explorer
from chatsr.widgets.sources import read_csv

__all__ = ["STAGES", "Explorer", "read_csv"]
