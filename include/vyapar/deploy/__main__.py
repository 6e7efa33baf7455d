"""`python -m include.vyapar.deploy {preflight|init|connections}`: the compose stack's one-shot init; bin/start's alert connections."""

import sys

from include.vyapar.deploy.init import main

main(sys.argv[1:])
