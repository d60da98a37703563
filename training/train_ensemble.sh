#!/usr/bin/env bash
# Reproduces the shipped ensemble, emoji_batch/models/ensemble_bert_ngram_cnn/: the mix of
# the three shipped bundles fitted on Val.csv (its metrics are 2-fold cross-fitted). Run
# after the members are final (train_bert.sh, train_default.sh, train_glove_cnn.sh): the
# ensemble names them by content hash and refuses them once they change.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p training/logs
models=emoji_batch/models
.venv/bin/emoji-batch ensemble "$models/fine_tuned_bert" "$models/ngram_linear" "$models/glove_cnn" \
  --data ../shared/data/tweeteval-emoji/Val.csv \
  --output "$models/ensemble_bert_ngram_cnn" --force 2>&1 | tee training/logs/train_ensemble.log
