"""Pure modelling code (numpy, scipy, scikit-learn): no MLflow, no web framework."""

# The layout of the fitted estimators' pickled state. Registered versions carry it as the
# ``cvm_model_format`` tag, and the service refuses, with a clear message, a version saved
# in another format (older versions without the tag are loaded as before). Bump it with any
# change that makes an earlier pickle unloadable or silently different.
MODEL_FORMAT = 1
