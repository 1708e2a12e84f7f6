cmake_minimum_required(VERSION 3.25)
# Checks the build's link graph (GRAPH, written at configure time by
# cmake/TinyfleetLinkGraph.cmake) against the rooms' rules: fails naming each target a
# program or room reaches that it must not.
#   cmake -DGRAPH=build/link_graph.txt -P link_graph_check.cmake

# Project targets (tinyfleet_*) each root may reach, directly or through others. A target
# not listed is refused, so a new dependency between rooms is a decision made here.
set(kernels tinyfleet_kernels_runtime tinyfleet_kernels_ops)
set(update tinyfleet_update)
set(update_host tinyfleet_update tinyfleet_update_host tinyfleet_kernels_artifact_writer
                tinyfleet_storage ${kernels})
set(allowed_tinyfleet_device_agent ${update})
set(allowed_tinyfleet_device_agent_linux tinyfleet_device_agent ${update} ${kernels})
# fleet-sim --sessions firmware runs the firmware's MQTT client and outbox built for the host.
set(allowed_fleet-sim tinyfleet_device_agent_linux tinyfleet_device_agent ${update_host}
                      tinyfleet_optimizer_service tinyfleet_optimizer tinyfleet_kernels
                      tinyfleet_mqtt_outbox_host tinyfleet_mqtt_host)
set(allowed_fleetctl tinyfleet_proto ${update_host})
set(allowed_tinyfleet_server ${update_host} tinyfleet_proto tinyfleet_optimizer_service
                             tinyfleet_optimizer tinyfleet_optimizer_grpc tinyfleet_kernels
                             tinyfleet_gate_statistics)
set(allowed_fleetd tinyfleet_server ${allowed_tinyfleet_server})

# Third-party libraries a root must not reach: the device agent's core is portable.
set(forbidden_tinyfleet_device_agent PahoMqttCpp::paho-mqttpp3 PkgConfig::SODIUM
                                     tinyfleet_kernels_runtime)

# Known exceptions, one edge each, not followed when checking (none today).
set(exceptions "")

set(roots tinyfleet_device_agent tinyfleet_device_agent_linux fleet-sim fleetctl
          tinyfleet_server fleetd)

if(NOT EXISTS "${GRAPH}")
  message(FATAL_ERROR "no link graph at '${GRAPH}' (configure the build first)")
endif()
file(STRINGS "${GRAPH}" edges)
set(known "")
foreach(e IN LISTS edges)
  if(e IN_LIST exceptions)
    list(APPEND known "${e}")
    continue()
  endif()
  string(REGEX MATCH "^(.+) -> (.+)$" _ "${e}")
  set(from "${CMAKE_MATCH_1}")
  string(MAKE_C_IDENTIFIER "${from}" key)
  list(APPEND deps_${key} "${CMAKE_MATCH_2}")
endforeach()

set(failures "")
foreach(root IN LISTS roots)
  # Everything `root` reaches, and through which target first.
  set(reached "")
  set(todo ${root})
  while(todo)
    list(POP_FRONT todo t)
    string(MAKE_C_IDENTIFIER "${t}" key)
    foreach(d IN LISTS deps_${key})
      if(NOT d IN_LIST reached)
        list(APPEND reached ${d})
        string(MAKE_C_IDENTIFIER "${d}" dkey)
        set(via_${dkey} ${t})
        list(APPEND todo ${d})
      endif()
    endforeach()
  endwhile()
  if(NOT reached)
    list(APPEND failures "${root}: not in the link graph")
    continue()
  endif()
  foreach(d IN LISTS reached)
    string(MAKE_C_IDENTIFIER "${d}" dkey)
    if(d MATCHES "^tinyfleet_" AND NOT d STREQUAL "tinyfleet_warnings" AND
       NOT d IN_LIST allowed_${root})
      list(APPEND failures "${root} must not link ${d} (reached through ${via_${dkey}})")
    endif()
    if(d IN_LIST forbidden_${root})
      list(APPEND failures "${root} must not link ${d} (reached through ${via_${dkey}})")
    endif()
  endforeach()
endforeach()

foreach(e IN LISTS known)
  message(STATUS "known exception: ${e}")
endforeach()
if(failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR "link graph breaks the rooms' rules:\n  ${text}")
endif()
message(STATUS "link graph: ${roots} reach only what they may")
