"""`python -m include.vyapar.deploy {preflight|init}`: the compose stack's one-shot init."""

import sys

from include.vyapar.deploy.init import main

main(sys.argv[1:])
