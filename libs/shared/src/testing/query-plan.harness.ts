import type { Pool } from 'pg';

/** How a plan reads one table: the node, the table, the index and the index condition (a bitmap scan's from its index child). */
export interface TableAccess {
  node: string;
  relation: string;
  index?: string;
  condition?: string;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

/**
 * Every table access in the plan PostgreSQL gives `text` with `values` (`EXPLAIN (FORMAT JSON)`, not run; with
 * parameters, the custom plan of a prepared statement's first executions), in plan order: for tests that a statement
 * reads a large table through an index, not by scanning it.
 */
export async function tableAccesses(pool: Pool, text: string, values: unknown[] = []): Promise<TableAccess[]> {
  const { rows } = await pool.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>({ text: `EXPLAIN (FORMAT JSON) ${text}`, values });
  const accesses: TableAccess[] = [];
  const visit = (node: PlanNode) => {
    const bitmap = node['Node Type'] === 'Bitmap Heap Scan' ? node.Plans?.find((child) => child['Node Type'] === 'Bitmap Index Scan') : undefined;
    const index = node['Index Name'] ?? bitmap?.['Index Name'];
    const condition = node['Index Cond'] ?? bitmap?.['Index Cond'];
    if (node['Relation Name']) {
      accesses.push({ node: node['Node Type'], relation: node['Relation Name'], ...(index && { index }), ...(condition && { condition }) });
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  visit(rows[0]['QUERY PLAN'][0].Plan);
  return accesses;
}
