"""What runs when: the schedules declaration, the DAG factory, Cosmos' configuration and targeted runs."""
