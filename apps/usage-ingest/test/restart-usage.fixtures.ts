/**
 * Usage bodies for the restart tests (`u-<n>` ids over five accounts), one per id and remembered: an id sent again
 * carries the very body first sent, as a client's retry would (a new occurredAt would make it a 409 conflict).
 */
export function rememberedUsageBodies(): (id: string) => object {
  const bodies = new Map<string, object>();
  return (id) => {
    const body = bodies.get(id) ?? {
      id, accountId: `acct-${Number(id.slice(2)) % 5}`, occurredAt: new Date().toISOString(), feature: 'chat', model: 'gpt-4o-mini', inputTokens: 10, outputTokens: 10,
    };
    bodies.set(id, body);
    return body;
  };
}
