"""Training workflows: reading training data from volumes and files into the arrays that
``models/`` trains on."""
