"""The combinatorial-creativity task: graph, prompts, tokenizer, corpus, scoring."""
