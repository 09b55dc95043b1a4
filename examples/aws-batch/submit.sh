#!/bin/sh
# One run of edgeaudit on AWS Batch: an array job of N shards, then the merge, which AWS Batch
# starts after every child of the array succeeded (it depends on the array job as a whole).
#
# Before the first run: register the two job definitions beside this script,
#   aws batch register-job-definition --cli-input-json file://edgeaudit-shard.json
#   aws batch register-job-definition --cli-input-json file://edgeaudit-merge.json
# with jobRoleArn a role that has the audit role's read-only policy plus s3:ListBucket,
# s3:GetObject, s3:PutObject and s3:DeleteObject on the reports prefix (REPORTS_S3) and
# s3:GetObject on the config object (CONFIG_S3), and the image of the repository's Dockerfile
# (edgeaudit, Chromium and the AWS CLI) in your registry, by digest.
#
# The config: edgeaudit.toml is an S3 object, CONFIG_S3 in edgeaudit-shard.json; every shard
# copies it at its start (aws s3 cp "$CONFIG_S3" edgeaudit.toml). A shard that cannot read it
# exits 4 (usage error) and is not retried: retrying cannot make a missing config appear. Only a
# lost host is retried. A child that fails leaves the merge job FAILED (its dependency failed):
# the run has no report then, and the failed child's log says why.
#
# --shard auto reads AWS_BATCH_JOB_ARRAY_INDEX (0..N-1) and AWS_BATCH_JOB_ARRAY_SIZE, which AWS
# Batch sets in every child; the run id is the array job's id, the part of AWS_BATCH_JOB_ID
# before ':', the same in every child. An array has 2 to 10,000 children.
set -eu
SHARDS="${SHARDS:-4}"
QUEUE="${QUEUE:-edgeaudit}"

array=$(aws batch submit-job --job-name edgeaudit-shards --job-queue "$QUEUE" \
  --job-definition edgeaudit-shard --array-properties "size=$SHARDS" \
  --query jobId --output text)
echo "shards: array job $array (run id aws-batch-$array)"

# No `type`: SEQUENTIAL would run the children one after another, N_TO_N pairs the children of
# two arrays; a plain dependency on the array job waits for all of its children.
merge=$(aws batch submit-job --job-name edgeaudit-merge --job-queue "$QUEUE" \
  --job-definition edgeaudit-merge --depends-on "jobId=$array" \
  --container-overrides "environment=[{name=ARRAY_JOB_ID,value=$array}]" \
  --query jobId --output text)
echo "merge: job $merge, after the array; its exit code is the verdict (1: findings, 2: shards not one run)"
