-- Argo CD health check of a BigModelJob (bigmodel-operator): the value of the argocd-cm key
-- resource.customizations.health.bigmodel.dev_BigModelJob.
--   Healthy      Ready is True: the job is Running or has Succeeded
--   Suspended    runPolicy.suspend: the node pods are deleted, the job is kept
--   Degraded     Stalled is True: Failed, or node pods unschedulable for too long
--   Progressing  anything else, and a generation the operator has not acted on yet
-- The message is the operator's. Argo CD's Lua has no string library: none is used.
local health = {status = "Progressing", message = "waiting for the bigmodel operator"}
local status, generation = obj.status, obj.metadata.generation
if status == nil or status.observedGeneration == nil or status.observedGeneration < 0 then
  return health
end
if generation ~= nil and status.observedGeneration ~= generation then
  health.message = "waiting for the bigmodel operator to act on generation " .. generation
  return health
end
local conditions = {}
for _, condition in ipairs(status.conditions or {}) do
  conditions[condition.type] = condition
end
local ready, stalled = conditions["Ready"], conditions["Stalled"]
if status.phase == "Suspended" then
  health.status = "Suspended"
elseif stalled ~= nil and stalled.status == "True" then
  health.status = "Degraded"
elseif ready ~= nil and ready.status == "True" then
  health.status = "Healthy"
end
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  health.message = ready.message
elseif status.phase ~= nil then
  health.message = status.phase
end
return health
