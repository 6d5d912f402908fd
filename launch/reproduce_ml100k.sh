#!/usr/bin/env bash
# The MovieLens-100K table: see launch/reproduce_movielens.sh for what it
# does and the overrides it takes.
exec bash "$(dirname "$0")/reproduce_movielens.sh" 100k
