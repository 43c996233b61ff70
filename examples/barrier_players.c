/* SPDX-License-Identifier: MIT */
/*
 * barrier_players.c — Barrier between processes (the classic Python ten
 * players): the game starts only when all ten are ready.
 *
 * Each player gets ready in its own time and then waits at a Barrier of ten
 * parties. No player passes before the tenth arrives, so every "ready" line
 * comes before every "go" line. ipc_barrier_wait returns each player's
 * arrival index (the last to arrive gets 9). If a player died while
 * waiting, the others would get IPC_EBROKEN instead of waiting for ever.
 */
#include "example.h"

#define PLAYERS 10

static ipc_barrier *lobby;

static int player(void *arg)
{
	int id = (int)(long)arg;

	srand((unsigned)getpid());
	ex_sleep_ms(rand() % 200); /* loading the map */
	ex_log("player %d ready", id);
	int idx = ipc_barrier_wait(lobby, 10000);
	ex_check(idx, "ipc_barrier_wait");
	ex_log("player %d go! (arrived #%d)", id, idx);
	return 0;
}

int main(void)
{
	ipc_process *kids[PLAYERS];
	int rc = 0;

	ex_check(ipc_barrier_new(&lobby, PLAYERS), "ipc_barrier_new");
	for (int i = 0; i < PLAYERS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "player-%d", i);
		kids[i] = ex_spawn(name, player, (void *)(long)i);
	}
	for (int i = 0; i < PLAYERS; i++)
		rc |= ex_join(kids[i]);
	ex_log("all %d players started together", PLAYERS);
	ipc_barrier_close(lobby);
	return rc;
}
