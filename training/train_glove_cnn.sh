#!/usr/bin/env bash
# Reproduces the shipped GloVe bundle, emoji_batch/models/glove_cnn/ (the default until
# ngram_linear beat it), with the project's
# own `train` command on Train.csv + Extra.csv (170k tweets). About 10-15 minutes on 2 CPU
# cores. OUT=DIR writes the bundle elsewhere.
# Run from anywhere after `make install`; the log lands in training/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data
mkdir -p training/logs
.venv/bin/emoji-batch train glove_cnn \
  --data "$data/tweeteval-emoji/Train.csv" --data "$data/semeval2018-extra/Extra.csv" \
  --val "$data/tweeteval-emoji/Val.csv" \
  --mapping "$data/tweeteval-emoji/Mapping.csv" \
  --embeddings "$data/glove/glove.twitter.27B.25d.subset.txt" \
  --class-weight balanced --batch-size 256 --patience 3 --seed 13 \
  --set 'kernel_sizes=[1,2,3]' --set filters=256 --set mean_pool=true --set batch_norm=false --set dense_units=0 \
  --set extra_dim=50 --set embedding_dropout=0.3 \
  --output "${OUT:-emoji_batch/models/glove_cnn}" --force 2>&1 | tee training/logs/train_glove_cnn.log
# Checks its reduced precisions on Val.csv; `score --precision auto` takes the fastest that
# beats fp32 on the CPU (bf16 on CPUs with AVX-512 BF16 or AMX).
.venv/bin/emoji-batch quantize "${OUT:-emoji_batch/models/glove_cnn}" \
  --data "$data/tweeteval-emoji/Val.csv" 2>&1 | tee -a training/logs/train_glove_cnn.log \
  || echo "no reduced precision recorded" | tee -a training/logs/train_glove_cnn.log
