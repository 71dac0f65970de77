"""Transformer++ and Energy-Based Transformer: model, FLOP accounting, data, training, decoding.

architectures  the registry: every architecture's config name, family, variant, label, display name, colour
model          both models on one trunk, with a leading run dimension; build_model, load_model
train          training a batch of runs to a FLOP budget, resumably (TrainConfig, train_batch)
budget         a FLOP budget as a number of steps, from a measured step
flops          analytic and measured FLOPs of training steps and answers
data           padded training batches in a seeded, resumable order; the validation split
optim          AdamW with one set of moments per run
checkpoint     atomic checkpoints that carry each run's random state
generate       batched answers of either model, with their KV caches; best-of-k
decoding       the decoding settings of each family
tuning         the tuning sweep: equal effort per architecture, the best setting
experiment     one grid point: train it, then sample its answers

Nothing is imported here, so that the registry (models.architectures) loads without torch.
"""
