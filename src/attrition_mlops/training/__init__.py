"""Training: model selection and registration of a challenger."""
