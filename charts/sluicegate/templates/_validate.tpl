{{/*
Checks that values.schema.json cannot express, because they compare two values.
Each failure names the values at fault and how to fix them.
*/}}
{{- define "sluicegate.validate" -}}
{{- $pg := .Values.postgresql }}
{{- if and $pg.bundled.enabled $pg.external.dsnSecretRef.name }}
{{- fail (printf "postgresql.external.dsnSecretRef.name is %q but postgresql.bundled.enabled is true: set postgresql.bundled.enabled=false to use that external database, or leave the name empty to use the bundled one" $pg.external.dsnSecretRef.name) }}
{{- end }}
{{- $scaling := .Values.gateway.autoscaling }}
{{- if and $scaling.enabled (gt (int $scaling.minReplicas) (int $scaling.maxReplicas)) }}
{{- fail (printf "gateway.autoscaling.minReplicas (%d) is greater than gateway.autoscaling.maxReplicas (%d): raise maxReplicas or lower minReplicas" (int $scaling.minReplicas) (int $scaling.maxReplicas)) }}
{{- end }}
{{- $pdb := .Values.gateway.podDisruptionBudget }}
{{- $fewest := ternary $scaling.minReplicas .Values.gateway.replicas $scaling.enabled | int }}
{{- if and $pdb.enabled (ge (int $pdb.minAvailable) $fewest) }}
{{- fail (printf "gateway.podDisruptionBudget.minAvailable (%d) must be below the fewest gateway replicas (%d), or no node could ever be drained: lower minAvailable, add replicas or set gateway.podDisruptionBudget.enabled=false" (int $pdb.minAvailable) $fewest) }}
{{- end }}
{{- end }}
