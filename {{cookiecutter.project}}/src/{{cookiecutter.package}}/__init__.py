"""The model code of {{ cookiecutter.project }}: data, features, training, evaluation, serving."""
