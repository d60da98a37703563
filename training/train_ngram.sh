#!/usr/bin/env bash
# Trains the n-gram model, models/ngram_linear/ (git-ignored), with the project's own
# `train` command on the shared TweetEval data: word 1-2-grams + char_wb 2-5-grams seen in
# >= 2 tweets, idf-weighted and L2-normalised per block, linear softmax with the
# baseline's L2 (C=2), balanced class weights, the epoch chosen by validation macro-F1.
# About 2 minutes on 2 CPU cores. Run from anywhere after `make install`; the log lands
# in training/logs/. Compare with training/baseline_tfidf.py.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/tweeteval-emoji
mkdir -p training/logs models
.venv/bin/emoji-batch train ngram_linear \
  --data "$data/Train.csv" --val "$data/Val.csv" --mapping "$data/Mapping.csv" \
  --text-column TEXT --label-column Label \
  --class-weight balanced --batch-size 256 --monitor val_macro_f1 --patience 5 --seed 13 \
  --set min_df=2 --set l2=5.6e-6 --set hidden=0 --set dropout=0 --weights-dtype float16 \
  --output models/ngram_linear --force 2>&1 | tee training/logs/ngram_linear.log
