"""Why a model decided: each word's contribution to its toxic probability.

- ``words``      the words of a comment as a reader sees them, and the tokens that spell each one
- ``occlusion``  leave-one-word-out occlusion: how much P(toxic) drops without each word

The web app highlights the words of a comment by their contribution, its API returns them
(``"explain": true``), and the report explains the behavioural cases that a model fails.
"""
