#!/usr/bin/env bash
# Trains every architecture on the shared TweetEval data into models/<name>/, one at a
# time, logging to training/logs/<name>.log. Usage: training/train_all.sh [NAME ...]
# (default: all seven). Protocols, by the environment:
#   default      20 labels, Train.csv, Val.csv for early stopping and the reported metrics
#   LABELS=top9  the notebook's: 9 most frequent labels downsampled to the rarest, stratified
#                10% of Train.csv held out; writes models/<name>_top9/
# BERT_EPOCHS (default 2) caps the BERT family's epochs per phase.
# Then `.venv/bin/python training/results_table.py models/*` prints the results table.
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data
tweets=$data/tweeteval-emoji
mkdir -p training/logs models
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(glove_cnn glove_bilstm glove_lstm_attention glove_gru_attention \
                                 fine_tuned_bert bert_classifier bert_bilstm)
for name in "${names[@]}"; do
  case $name in
    glove_*) family=(--embeddings "$data/glove/glove.twitter.27B.25d.subset.txt"
                     --batch-size 128 --set extra_dim=50 --set embedding_dropout=0.3) ;;
    *)       family=(--batch-size 32 --max-epochs "${BERT_EPOCHS:-2}") ;;
  esac
  if [ "${LABELS:-all}" = all ]; then
    protocol=(--val "$tweets/Val.csv" --class-weight balanced); out=$name
  else
    protocol=(--labels "$LABELS" --balance downsample); out=${name}_$LABELS
  fi
  .venv/bin/emoji-batch train "$name" --data "$tweets/Train.csv" --mapping "$tweets/Mapping.csv" \
    "${protocol[@]}" --patience 2 --seed 13 "${family[@]}" --output "models/$out" --force \
    2>&1 | tee "training/logs/$out.log"
done
