#!/usr/bin/env bash
# Reproduces the shipped BERT bundle, emoji_batch/models/fine_tuned_bert/: fine-tunes the
# packaged all-MiniLM-L6-v2 on Train.csv + Extra.csv (160,416 tweets; Dev.csv for the
# best epoch, on macro-F1, and the prior power), then checks and records its int8 copy on
# Dev.csv and records Val.csv beside it. One epoch (EPOCHS=N for more) takes about an
# hour on 2 CPU cores; checkpoints after every epoch, so after an interruption rerun
# with RESUME=1 to continue. OUT=DIR writes the bundle elsewhere (e.g. models/ to try it
# first). Run from anywhere after `make install`; logs land in training/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
tweets=../shared/data/tweeteval-emoji
extra=../shared/data/semeval2018-extra
out=${OUT:-emoji_batch/models/fine_tuned_bert}
log=training/logs/train_bert.log
mkdir -p training/logs
resume=()
[ "${RESUME:-0}" = 1 ] && resume=(--resume)
.venv/bin/emoji-batch train fine_tuned_bert \
  --data "$tweets/Train.csv" --data "$extra/Extra.csv" \
  --val "$extra/Dev.csv" --mapping "$tweets/Mapping.csv" \
  --class-weight balanced --batch-size 32 --max-epochs ${EPOCHS:-1} --patience 1 --seed 13 \
  --learning-rate 1e-4 --warmup 0.06 --decay --label-smoothing 0.1 \
  --monitor val_macro_f1 --weights-dtype float16 \
  --output "$out" --force "${resume[@]}" 2>&1 | tee -a "$log"
# Dev.csv checks the int8 copy against fp32 here (agreement, fallback margin); nothing is
# trained on it.
.venv/bin/emoji-batch quantize "$out" --data "$extra/Dev.csv" --text-column TEXT \
  --label-column Label --precision int8 2>&1 | tee -a "$log"
.venv/bin/emoji-batch evaluate --model "$out" --data "$tweets/Val.csv" --text-column TEXT \
  --label-column Label --precision int8 2>&1 | tee -a "$log"
.venv/bin/emoji-batch evaluate --model "$out" --data "$tweets/Val.csv" --text-column TEXT \
  --label-column Label --precision fp32 --record 2>&1 | tee -a "$log"
