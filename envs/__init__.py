"""Gymnasium environments over the twin. Importing ``envs`` registers:

* ``yuetwin/Dispatch-v0``: dispatching decisions on any scenario's line (``envs.dispatch``);
* ``yuetwin/JobShop-v0``: the static n x m job shop, benchmark instances or seeded generated ones
  (``envs.jobshop``);
* ``yuetwin/DynamicJobShop-v0``: the dynamic flexible job shop of Liu, Piplani & Toro (2022), built as a
  scenario on the line engine (``envs.dispatch``).

All share the observation and action conventions of ``envs.spaces``.
"""

from gymnasium.envs.registration import register

register(id="yuetwin/Dispatch-v0", entry_point="envs.dispatch:DispatchEnv")
register(id="yuetwin/JobShop-v0", entry_point="envs.jobshop:JobShopEnv")
register(id="yuetwin/DynamicJobShop-v0", entry_point="envs.dispatch:DynamicJobShopEnv")
