"""Staff pages for the rewards catalogue of a program (``loyalty.program.manage``): add a
reward, switch one on or off. Redeeming for a member is on the member's page
(members_web.py)."""

from __future__ import annotations

from litestar import Request, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from core import records
from core.audit import client_ip
from core.permissions import current_actor
from plugins.loyalty import rewards
from plugins.loyalty.members_web import form_data
from plugins.loyalty.programs import LoyaltyError
from plugins.loyalty.programs_web import MANAGE, _program_or_404, program_page
from plugins.loyalty.tables import Reward


@post("/loyalty/programs/{program_id:int}/rewards", opt=MANAGE, name="loyalty-reward-create")
async def reward_create(request: Request, program_id: FromPath[int]) -> Template | Redirect:
    program = await _program_or_404(program_id)
    data = await form_data(request)
    values = {k: v for k, v in data.items() if not k.startswith("_")}
    values["active"] = True
    try:
        await rewards.save_reward(current_actor(request), program_id, values,
                                  ip=client_ip(request))
    except LoyaltyError as exc:
        return await program_page(program, errors={f"reward.{exc.field}": exc.message},
                                  values=data, failed="reward", status=422)
    return Redirect(f"/loyalty/programs/{program_id}?done=reward#rewards-h", status_code=303)


@post("/loyalty/programs/{program_id:int}/rewards/{reward_id:int}/toggle", opt=MANAGE,
      name="loyalty-reward-toggle")
async def reward_toggle(request: Request, program_id: FromPath[int], reward_id: FromPath[int]
                        ) -> Redirect:
    reward = await Reward.select().where((Reward.id == reward_id)
                                         & (Reward.program == program_id)).first().run()
    if reward is None:
        raise NotFoundException("not found")
    await records.update(current_actor(request), Reward, reward_id,
                         {"active": not reward["active"]}, ip=client_ip(request))
    return Redirect(f"/loyalty/programs/{program_id}?done=reward#rewards-h", status_code=303)


ROUTES = [reward_create, reward_toggle]
