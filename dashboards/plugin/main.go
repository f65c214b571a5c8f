// Command gpx_lab is the backend of the lab's Grafana data source plugin
// (ratingslab-lab-datasource). Grafana starts it from the plugin folder
// `make plugin` builds; it is never run by hand (the SDK's -standalone
// debug mode is not used: it kills processes by name).
package main

import (
	"os"

	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/log"

	"github.com/ratingslab/lab/dashboards/plugin/labsource"
)

func main() {
	if err := datasource.Manage(labsource.PluginID, labsource.NewInstance, datasource.ManageOpts{}); err != nil {
		log.DefaultLogger.Error("lab data source", "error", err.Error())
		os.Exit(1)
	}
}
