#!/usr/bin/env bash
# Fetch Apache Kafka from Maven Central into .cache/kafka/libs (a folder laid
# out like a Kafka distribution's libs/), unless the same pom already did.
# Used by `make kafka` and .ci/run. Needs Maven and a JDK (17+).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pom="$root/platform/kafka/pom.xml"
home="$root/.cache/kafka"
stamp="$home/.pom.sha256"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && ls "$home"/libs/kafka_2.13-*.jar >/dev/null 2>&1; then
  echo "Kafka is in $home ($(basename "$home"/libs/kafka_2.13-*.jar .jar | sed 's/^kafka_2.13-//')); 'lab up --kafka cluster' uses it."
  exit 0
fi
command -v mvn >/dev/null || { echo "make kafka: Maven (mvn) is not installed; install it (apt-get install maven) or point KAFKA_HOME at an unpacked Apache Kafka" >&2; exit 1; }
echo "Fetching Apache Kafka from Maven Central into $home/libs ..."
tmp="$home/libs.tmp"
rm -rf "$tmp"
mkdir -p "$home"
mvn -q -B -Dstyle.color=never -f "$pom" -Dmaven.repo.local="$root/.cache/m2" -Dkafka.libs="$tmp" dependency:copy-dependencies
rm -rf "$home/libs"
mv "$tmp" "$home/libs"
echo "$want" > "$stamp"
echo "Kafka $(basename "$home"/libs/kafka_2.13-*.jar .jar | sed 's/^kafka_2.13-//') is in $home ($(ls "$home/libs" | wc -l) jars); 'lab up --kafka cluster' uses it."
