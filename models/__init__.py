"""Transformer++ and Energy-Based Transformer: model, FLOP accounting, data, training, decoding."""

from .model import EBT, EBTConfig, ModelConfig, TransformerPP, build_model, load_model
from .train import TrainConfig, train_to_budget

__all__ = ["EBT", "EBTConfig", "ModelConfig", "TransformerPP", "TrainConfig", "build_model", "load_model", "train_to_budget"]
