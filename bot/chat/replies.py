"""Showing a metered chat call as it streams: the status line, the growing reply, its end or abandonment."""

from __future__ import annotations

from bot.billing.metering import Cell, Completion, Early, Keeper, MeteredChat
from bot.responder import ReplyStream, Responder
from storage.ledger_records import Charge


async def stream_reply(
    chat: MeteredChat,
    cell: Cell,
    charge: Charge,
    responder: Responder,
    *,
    keep: Keeper | None = None,
    lazy: bool = False,
    early: Early | None = None,
) -> Completion:
    """Run one metered chat call, streaming its text to the responder; a failed call's reply is abandoned.
    `keep` stores the completion with its settlement (see MeteredChat.stream) before the reply is finished.

    A platform that fails to show the reply does not cut the model's stream short: the provider
    bills what it generates, so the call runs on and is settled at its usage; the platform's error is
    raised afterwards. `early`: the call's slot (and reservation) taken by the caller (see MeteredChat.stream).
    `lazy` starts the reply at its first text: a step of the tool loop that only
    calls tools shows nothing.
    """
    await responder.show_status("thinking…")
    replies: list[ReplyStream] = [] if lazy else [responder.stream()]
    platform_failure: list[Exception] = []

    async def show(text: str) -> None:
        if platform_failure:
            return
        try:
            if not replies:
                replies.append(responder.stream())
            await replies[0].append(text)
        except Exception as exc:
            platform_failure.append(exc)

    try:
        completion = await chat.stream(cell, charge, show, keep=keep, early=early)
    except BaseException:  # a model error, a cancellation, or the reply that could not be stored
        for reply in replies:
            await reply.abandon()
        raise
    if platform_failure:
        raise platform_failure[0]
    for reply in replies:
        await reply.finish()
    return completion
