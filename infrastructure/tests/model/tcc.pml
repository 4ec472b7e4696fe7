/*
 * The TCC protocol as strata-infrastructure runs it: the coordinator's global
 * states (src/tcc/coordinator.rs), the recovery that drives a stored
 * transaction on (`drive`), and the participant's barrier (src/tcc/barrier.rs),
 * for two branches. Checked exhaustively by bench/model-check.sh.
 *
 * Faults: any branch call or answer may be lost or arrive twice, and calls
 * and answers of one branch arrive in any order (a late try after its cancel). A
 * lost answer is what a coordinator crash, a timeout or a refused connection
 * looks like to the protocol; the coordinator keeps nothing but its stored
 * state, and every step below starts from that state alone. The deadline may
 * pass at any moment while the transaction is prepared.
 *
 * Checked:
 *   - a transaction succeeds only with both branches' confirms applied;
 *   - a confirm applies only a reservation its try made, and never after a
 *     cancel; a cancel never undoes a confirm;
 *   - a try never acts after its cancel (the hanging call);
 *   - once the faults stop and every call is answered, the transaction is
 *     terminal, a failed one holds nothing and applied no confirm, and no
 *     reservation is left held.
 *
 * Two tables here are compared with the code by the test
 * `tcc::the_model_and_the_code_share_their_tables` (strata-infrastructure-tests):
 * every MOVE(from, to) is a move `TransactionState::successors` allows and
 * every allowed move appears, and `decide` lists `barrier::decide` row by row.
 */

#define N 2
#define MAX_FAULTS 4

/* global states */
#define NONE 0
#define PREPARED 1
#define SUBMITTED 2
#define ABORTING 3
#define SUCCEEDED 4
#define FAILED 5

/* branch operations */
#define TRY 0
#define CONFIRM 1
#define CANCEL 2

/* barrier decisions */
#define RUN 0
#define SKIP 1
#define REFUSE 2

/* a branch's state at the coordinator */
#define REGISTERED 0
#define TRIED 1
#define TRY_FAILED 2
#define CONFIRMED 3
#define CANCELLED 4

byte g = NONE;
byte branch[N];

/* in flight, per branch and operation (index branch * 3 + op): calls, and
   answers of success and of failure; taken in any order */
byte calls[6];
byte successes[6];
byte failures[6];

/* each participant's barrier rows and business state */
bool try_row[N];
bool confirm_row[N];
bool cancel_row[N];
bool held[N];
bool confirmed_effect[N];

byte faults = 0;

/* Broken versions of the protocol, each of which the checks must catch
   (bench/model-check.sh defines one at a time). */
#ifdef SUBMIT_ON_ONE_TRY
#define tried(other) true
#else
#define tried(other) (branch[other] == TRIED)
#endif

inline MOVE(from, to) {
    assert(g == from);
    g = to
}

/* What the barrier decides for `op`. For a try, `first`: its row was new;
   `second`: its cancel's row is there. For a confirm, `first`: its row was new.
   For a cancel, `first`: its own row was new; `second`: it wrote the try's row
   (the try never ran: a tombstone). */
inline decide(op, first, second, d) {
    if
    :: op == TRY     && first == 1 && second == 0 -> d = RUN
    :: op == TRY     && first == 1 && second == 1 -> d = RUN
    :: op == TRY     && first == 0 && second == 0 -> d = SKIP
    :: op == TRY     && first == 0 && second == 1 -> d = REFUSE
    :: op == CONFIRM && first == 1 && second == 0 -> d = RUN
    :: op == CONFIRM && first == 1 && second == 1 -> d = RUN
    :: op == CONFIRM && first == 0 && second == 0 -> d = SKIP
    :: op == CONFIRM && first == 0 && second == 1 -> d = SKIP
    :: op == CANCEL  && first == 1 && second == 0 -> d = RUN
    :: op == CANCEL  && first == 1 && second == 1 -> d = SKIP
    :: op == CANCEL  && first == 0 && second == 0 -> d = SKIP
    :: op == CANCEL  && first == 0 && second == 1 -> d = SKIP
    fi
}

/* nothing of branch b's op is in flight */
#define quiet(b, op) (calls[b * 3 + op] == 0 && successes[b * 3 + op] == 0 && failures[b * 3 + op] == 0)

/* The coordinator: each step is one stored change (a compare-and-set of the
   state, or a branch's outcome) or one round of calls. */
proctype Coordinator() {
    byte b;
end_coordinating:
    do
    /* begin: store the transaction prepared, call every try once */
    :: atomic { g == NONE ->
           MOVE(NONE, PREPARED);
           b = 0;
           do
           :: b < N -> calls[b * 3 + TRY]++; b++
           :: else -> break
           od;
           b = 0 }
    /* a try's success is stored; all tried: submitted */
    :: atomic { g == PREPARED && successes[0 * 3 + TRY] > 0 ->
           successes[0 * 3 + TRY]--; branch[0] = TRIED;
           if
           :: tried(1) -> MOVE(PREPARED, SUBMITTED)
           :: else -> skip
           fi }
    :: atomic { g == PREPARED && successes[1 * 3 + TRY] > 0 ->
           successes[1 * 3 + TRY]--; branch[1] = TRIED;
           if
           :: tried(0) -> MOVE(PREPARED, SUBMITTED)
           :: else -> skip
           fi }
    /* a try refused: aborting */
    :: atomic { g == PREPARED && failures[0 * 3 + TRY] > 0 ->
           failures[0 * 3 + TRY]--; branch[0] = TRY_FAILED; MOVE(PREPARED, ABORTING) }
    :: atomic { g == PREPARED && failures[1 * 3 + TRY] > 0 ->
           failures[1 * 3 + TRY]--; branch[1] = TRY_FAILED; MOVE(PREPARED, ABORTING) }
    /* the deadline passed (a try unanswered, lost, or slow): aborting */
    :: atomic { g == PREPARED -> MOVE(PREPARED, ABORTING) }
#ifdef ABORT_AFTER_SUBMIT
    :: atomic { g == SUBMITTED -> g = ABORTING }
#endif
    /* submitted: confirm each branch not confirmed, again after any answer
       but success; all confirmed: succeeded */
    :: atomic { g == SUBMITTED && branch[0] != CONFIRMED && quiet(0, CONFIRM) -> calls[0 * 3 + CONFIRM]++ }
    :: atomic { g == SUBMITTED && branch[1] != CONFIRMED && quiet(1, CONFIRM) -> calls[1 * 3 + CONFIRM]++ }
    :: atomic { g == SUBMITTED && successes[0 * 3 + CONFIRM] > 0 ->
           successes[0 * 3 + CONFIRM]--; branch[0] = CONFIRMED }
    :: atomic { g == SUBMITTED && successes[1 * 3 + CONFIRM] > 0 ->
           successes[1 * 3 + CONFIRM]--; branch[1] = CONFIRMED }
    :: atomic { g == SUBMITTED && branch[0] == CONFIRMED && branch[1] == CONFIRMED ->
           assert(confirmed_effect[0] && confirmed_effect[1]);
           MOVE(SUBMITTED, SUCCEEDED) }
    /* aborting: cancel each branch not cancelled (tried or not), again after
       any answer but success; all cancelled: failed */
    :: atomic { g == ABORTING && branch[0] != CANCELLED && quiet(0, CANCEL) -> calls[0 * 3 + CANCEL]++ }
    :: atomic { g == ABORTING && branch[1] != CANCELLED && quiet(1, CANCEL) -> calls[1 * 3 + CANCEL]++ }
    :: atomic { g == ABORTING && successes[0 * 3 + CANCEL] > 0 ->
           successes[0 * 3 + CANCEL]--; branch[0] = CANCELLED }
    :: atomic { g == ABORTING && successes[1 * 3 + CANCEL] > 0 ->
           successes[1 * 3 + CANCEL]--; branch[1] = CANCELLED }
    :: atomic { g == ABORTING && branch[0] == CANCELLED && branch[1] == CANCELLED ->
           MOVE(ABORTING, FAILED) }
    /* answers the current state has no use for: read and dropped */
    :: atomic { g != PREPARED && (successes[0 * 3 + TRY] > 0 || failures[0 * 3 + TRY] > 0) ->
           successes[0 * 3 + TRY] = 0; failures[0 * 3 + TRY] = 0 }
    :: atomic { g != PREPARED && (successes[1 * 3 + TRY] > 0 || failures[1 * 3 + TRY] > 0) ->
           successes[1 * 3 + TRY] = 0; failures[1 * 3 + TRY] = 0 }
    :: atomic { failures[0 * 3 + CONFIRM] > 0 -> failures[0 * 3 + CONFIRM]-- }
    :: atomic { failures[1 * 3 + CONFIRM] > 0 -> failures[1 * 3 + CONFIRM]-- }
    :: atomic { failures[0 * 3 + CANCEL] > 0 -> failures[0 * 3 + CANCEL]-- }
    :: atomic { failures[1 * 3 + CANCEL] > 0 -> failures[1 * 3 + CANCEL]-- }
    :: atomic { g != SUBMITTED && successes[0 * 3 + CONFIRM] > 0 -> successes[0 * 3 + CONFIRM] = 0 }
    :: atomic { g != SUBMITTED && successes[1 * 3 + CONFIRM] > 0 -> successes[1 * 3 + CONFIRM] = 0 }
    :: atomic { g != ABORTING && successes[0 * 3 + CANCEL] > 0 -> successes[0 * 3 + CANCEL] = 0 }
    :: atomic { g != ABORTING && successes[1 * 3 + CANCEL] > 0 -> successes[1 * 3 + CANCEL] = 0 }
    od
}

/* Branch `b`'s participant: each call is one local transaction, the barrier's
   rows and the business change committing together. */
proctype Participant(byte b) {
    byte d;
    bool first;
    bool second;
end_serving:
    do
    :: atomic { calls[b * 3 + TRY] > 0 ->
           calls[b * 3 + TRY]--;
           first = !try_row[b];
           second = cancel_row[b];
           decide(TRY, first, second, d);
           if
           :: d == RUN ->
                  /* the business try may be refused (no stock, no money): the
                     transaction rolls back, its barrier row with it */
                  if
                  :: assert(!cancel_row[b]);
                     try_row[b] = 1; held[b] = 1; successes[b * 3 + TRY]++
                  :: failures[b * 3 + TRY]++
                  fi
           :: d == SKIP -> successes[b * 3 + TRY]++
           :: d == REFUSE -> failures[b * 3 + TRY]++
           fi }
    :: atomic { calls[b * 3 + CONFIRM] > 0 ->
           calls[b * 3 + CONFIRM]--;
           first = !confirm_row[b];
           decide(CONFIRM, first, 0, d);
           if
           :: d == RUN ->
                  assert(held[b] && !cancel_row[b]);
                  confirm_row[b] = 1; held[b] = 0; confirmed_effect[b] = 1
           :: else -> skip
           fi;
           successes[b * 3 + CONFIRM]++ }
    :: atomic { calls[b * 3 + CANCEL] > 0 ->
           calls[b * 3 + CANCEL]--;
           second = !try_row[b];
#ifndef NO_TOMBSTONE
           try_row[b] = 1;
#endif
           first = !cancel_row[b];
           cancel_row[b] = 1;
           decide(CANCEL, first, second, d);
           if
           :: d == RUN -> assert(!confirm_row[b]); held[b] = 0
           :: else -> skip
           fi;
           successes[b * 3 + CANCEL]++ }
    od
}

/* Lost and doubled calls and answers, up to MAX_FAULTS in all. */
proctype Network() {
    byte i;
end_faulting:
    do
    :: atomic { faults < MAX_FAULTS ->
           select(i : 0 .. 5);
           if
           :: calls[i] > 0 -> calls[i]--; faults++
           :: calls[i] > 0 && calls[i] < 2 -> calls[i]++; faults++
           :: successes[i] > 0 -> successes[i]--; faults++
           :: successes[i] > 0 && successes[i] < 2 -> successes[i]++; faults++
           :: failures[i] > 0 -> failures[i]--; faults++
           :: failures[i] > 0 && failures[i] < 2 -> failures[i]++; faults++
           :: else -> skip
           fi }
    od
}

/* When nothing can move any more: the transaction is terminal and holds
   nothing; a failed one applied no confirm, a succeeded one both. */
proctype Settled() {
    timeout ->
    assert(g == SUCCEEDED || g == FAILED);
    assert(!held[0] && !held[1]);
    assert(g != FAILED || (!confirmed_effect[0] && !confirmed_effect[1]));
    assert(g != SUCCEEDED || (confirmed_effect[0] && confirmed_effect[1]))
}

init {
    atomic {
        run Coordinator();
        run Participant(0);
        run Participant(1);
        run Network();
        run Settled()
    }
}
