"""The background jobs page: administrators only, lists per state with empty states, retry,
cancel and the event deliveries that keep failing (retry, discard)."""

from __future__ import annotations

from core import jobs
from core.jobs_tables import EventDelivery, JobRow
from tests.conftest import csrf_headers, make_user, sign_in
from tests.core.events.helpers import EVENT, Subscriber, with_subscribers
from tests.core.jobs.helpers import with_jobs


async def test_the_page_is_for_administrators_only(client):
    await make_user("rep@example.test", roles=("sales_representative",))
    await sign_in(client, "rep@example.test")
    response = await client.get("/admin/jobs")
    assert response.status_code in (403, 404)


async def test_an_empty_queue_says_so(admin_client):
    response = await admin_client.get("/admin/jobs")
    assert response.status_code == 200
    assert "No job is waiting" in response.text
    assert "Oldest job waiting past its time: nothing is waiting" in response.text
    response = await admin_client.get("/admin/jobs?view=deliveries")
    assert "Every event was handled" in response.text


async def test_a_failed_job_is_listed_with_its_error_and_can_be_run_again(admin_client):
    rapport = admin_client.rapport
    plugin = with_jobs(rapport)
    plugin.fail_times = 10
    job_id = await jobs.enqueue(rapport, "testing.record", {}, max_attempts=1)
    await jobs.run_pending(rapport)
    response = await admin_client.get("/admin/jobs?view=failed")
    assert "job failed on purpose" in response.text and "Run again" in response.text

    plugin.fail_times = 0
    response = await admin_client.post(
        f"/admin/jobs/{job_id}/retry", data={"view": "failed"},
        headers=await csrf_headers(admin_client), follow_redirects=True)
    assert "The job will run again shortly." in response.text
    await jobs.run_pending(rapport)
    row = await JobRow.select(JobRow.status).where(JobRow.id == job_id).first().run()
    assert row["status"] == "done"


async def test_a_waiting_job_can_be_cancelled_but_not_without_the_form_token(admin_client):
    rapport = admin_client.rapport
    with_jobs(rapport)
    job_id = await jobs.enqueue(rapport, "testing.record", {}, delay=3600)
    response = await admin_client.get("/admin/jobs?view=scheduled")
    assert "Cancel" in response.text
    refused = await admin_client.post(f"/admin/jobs/{job_id}/cancel", data={"view": "scheduled"})
    assert refused.status_code == 403
    response = await admin_client.post(
        f"/admin/jobs/{job_id}/cancel", data={"view": "scheduled"},
        headers=await csrf_headers(admin_client), follow_redirects=True)
    assert "The job was cancelled." in response.text
    row = await JobRow.select(JobRow.status).where(JobRow.id == job_id).first().run()
    assert row["status"] == "cancelled"


async def test_a_failing_event_delivery_is_listed_and_can_be_discarded(admin_client):
    rapport = admin_client.rapport
    with_subscribers(rapport, broken=Subscriber(fail_times=5))
    await rapport.publish(EVENT, {"n": 1})
    await jobs.run_pending(rapport)
    response = await admin_client.get("/admin/jobs?view=deliveries")
    assert "A durable test event" in response.text and "subscriber down" in response.text
    delivery = await EventDelivery.select(EventDelivery.id).where(
        EventDelivery.subscriber == "broken").first().run()
    response = await admin_client.post(
        f"/admin/jobs/deliveries/{delivery['id']}/discard", data={"view": "deliveries"},
        headers=await csrf_headers(admin_client), follow_redirects=True)
    assert "will not be handed to that part of Rapport again" in response.text
    assert "Every event was handled" in response.text


async def test_the_navigation_offers_the_page_to_administrators(admin_client):
    response = await admin_client.get("/")
    assert 'href="/admin/jobs"' in response.text


async def test_a_delivery_no_worker_has_picked_up_for_minutes_is_shown_as_stuck(admin_client):
    from datetime import timedelta

    rapport = admin_client.rapport
    with_subscribers(rapport)
    event = await rapport.publish(EVENT, {"n": 1})
    # A subscriber no running process has (its plugin is enabled on no worker).
    await EventDelivery.insert(EventDelivery(
        event_id=event.id, subscriber="elsewhere", status="pending", attempts=0,
        run_at=jobs.utcnow() - timedelta(minutes=10), created_at=jobs.utcnow())).run()
    response = await admin_client.get("/admin/jobs?view=deliveries")
    assert "A durable test event" in response.text
    assert "Every event was handled" not in response.text
