"""MLflow "models from code" entry point: names the pyfunc model class (see pyfunc.py)."""

from mlflow.models import set_model

from molpre.inference.pyfunc import MolprePyfunc

set_model(MolprePyfunc())
