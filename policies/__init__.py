"""Dispatching policies behind one ``predict()`` protocol (``policies.base.Policy``): rules, the CP-SAT
solver and learned policies are scored by one evaluation routine on the same seeds and instances."""
