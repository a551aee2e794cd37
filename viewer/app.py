"""The har-clip viewer: predictions, training runs and a model's mistakes, read from ZenML.

streamlit run viewer/app.py          # from the project root, on the ZenML store of this environment
python -m viewer --server.port 8600  # the same, with any `streamlit run` options
"""

import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:  # `streamlit run` puts only viewer/ on the path
    sys.path.insert(0, str(PROJECT_ROOT))

import streamlit as st  # noqa: E402

st.set_page_config(page_title="har-clip viewer", layout="wide")
pages = [
    st.Page("views/predict.py", title="Predict", url_path="predict", default=True),
    st.Page("views/runs.py", title="Runs", url_path="runs"),
    st.Page("views/mistakes.py", title="Mistakes", url_path="mistakes"),
]
st.navigation(pages).run()
