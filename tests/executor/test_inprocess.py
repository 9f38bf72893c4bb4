"""The in-process executor: a task runs inline at submit, its messages reach the driver's
handler while it runs, its exception waits for result(); and make_executor's choices and
checks that start nothing."""
from __future__ import annotations

import pytest

from nasbench.errors import NasbenchError
from nasbench.executor import Resources, make_executor
from nasbench.executor.inprocess import InProcessExecutor


def post_then_count(mailbox, inbox, *messages):
    """Posts ``messages``; how many the handler had by the time the task went on."""
    for message in messages:
        mailbox.post(message)
    return len(inbox)


def fail(text):
    raise ValueError(text)


def interrupt():
    raise KeyboardInterrupt


@pytest.fixture
def inbox():
    return []


@pytest.fixture
def executor(inbox):
    return make_executor(None, handle=inbox.append)


def test_no_name_one_worker_no_address_is_in_process(executor):
    assert isinstance(executor, InProcessExecutor)
    assert executor.name == "inprocess" and not executor.remote and executor.capacity == 1
    assert executor.resources == Resources()
    assert isinstance(make_executor("inprocess"), InProcessExecutor)


def test_submit_runs_the_task_now_and_result_gives_its_value():
    calls = []
    executor = InProcessExecutor()
    pending = executor.submit(lambda a, b: calls.append((a, b)) or a * b, 6, 7)
    assert calls == [(6, 7)]  # ran at submit, not at result
    assert executor.wait([pending], timeout=0) == [pending]
    assert executor.result(pending) == 42
    assert executor.result(pending) == 42  # a result can be taken again


def test_an_exception_is_kept_until_result_and_raised_there_as_itself():
    executor = InProcessExecutor()
    pending = executor.submit(fail, "bad candidate")  # does not raise here
    after = executor.submit(lambda: "went on")
    with pytest.raises(ValueError, match="bad candidate") as raised:
        executor.result(pending)
    assert type(raised.value) is ValueError
    assert executor.result(after) == "went on"


def test_an_interrupt_is_not_kept_but_stops_submit():
    with pytest.raises(KeyboardInterrupt):
        InProcessExecutor().submit(interrupt)


def test_messages_reach_the_handler_while_the_task_runs(executor, inbox):
    pending = executor.submit(post_then_count, executor.mailbox, inbox, "trial 0", {"epoch": 1})
    assert executor.result(pending) == 2  # both handled before the task's next line
    assert inbox == ["trial 0", {"epoch": 1}]


def test_kept_messages_are_handled_and_not_kept(executor, inbox):
    executor.mailbox.post("checkpoint", keep_as=("run", 1))
    assert inbox == ["checkpoint"]
    assert executor.mailbox.kept(("run", 1)) is None
    executor.forget(("run", 1))  # nothing to drop: no error
    assert executor.mailbox.kept(("run", 1)) is None


def test_map_keeps_the_order_of_its_argument_sets(executor):
    assert executor.map(pow, [(2, 3), (3, 2), (10, 0), (0, 5)]) == [8, 9, 1, 0]
    assert executor.map(pow, []) == []


def test_map_raises_the_first_failing_tasks_exception_after_running_all(executor):
    ran = []

    def task(i):
        ran.append(i)
        if i % 2:
            raise ValueError(f"task {i}")
        return i

    with pytest.raises(ValueError, match="task 1"):
        executor.map(task, [(0,), (1,), (2,), (3,)])
    assert ran == [0, 1, 2, 3]


def test_tasks_start_tasks_on_the_same_executor_and_it_closes_twice(executor):
    assert executor.for_tasks() is executor
    assert executor.share(data := {"x": 1}) is data
    executor.close()
    executor.close()


@pytest.mark.parametrize("options", [dict(workers=2), dict(address="auto"), dict(resources=Resources(cpus=2)),
                                     dict(resources=Resources(gpus=1))])
def test_in_process_refuses_what_only_ray_does(options):
    with pytest.raises(NasbenchError, match="need --executor ray"):
        make_executor("inprocess", **options)


def test_an_unknown_executor_is_refused():
    with pytest.raises(NasbenchError, match="unknown executor 'dask'; known: inprocess, ray"):
        make_executor("dask")


@pytest.mark.parametrize("cpus, threads", [(1, 1), (0.5, 1), (1.9, 1), (2, 2), (7.5, 7)])
def test_a_tasks_threads_are_the_whole_part_of_its_cpus_at_least_one(cpus, threads):
    assert Resources(cpus=cpus).threads() == threads
